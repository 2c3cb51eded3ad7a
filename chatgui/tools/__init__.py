"""Tools the model may call: built-in ones, MCP servers, the consent policy, and the ToolBox that
holds them for the tool loop (engine/tool_loop.py). No Qt, no torch; imports only chatgui.common.

    box = ToolBox()
    box.add_builtins(calculator=True, clock=True, history_search=search_fn)
    box.add_mcp(McpHub(config))                 # tools of every configured MCP server
    result = box.call(call)                     # a ToolResult; never raises
"""
