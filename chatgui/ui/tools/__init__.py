"""Tool calling in the window (issue 31): the Tools dialog, the consent prompt, the call cards in
a reply, and the reply job that runs engine/tool_loop.run_tool_loop on the model runner."""
