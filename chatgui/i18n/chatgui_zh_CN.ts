<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AddServerDialog</name>
    <message>
        <source>Add an MCP server</source>
        <translation>添加 MCP 服务器</translation>
    </message>
    <message>
        <source>e.g. npx -y @modelcontextprotocol/server-filesystem ~/Documents</source>
        <translation>例如 npx -y @modelcontextprotocol/server-filesystem ~/Documents</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>Command</source>
        <translation>命令</translation>
    </message>
    <message>
        <source>or URL</source>
        <translation>或 URL</translation>
    </message>
    <message>
        <source>Give the server a name.</source>
        <translation>请为服务器起一个名称。</translation>
    </message>
    <message>
        <source>A server named “{name}” is already configured.</source>
        <translation>已配置了名为“{name}”的服务器。</translation>
    </message>
    <message>
        <source>The command cannot be read: {error}.</source>
        <translation>无法解析该命令：{error}。</translation>
    </message>
    <message>
        <source>Give a command to start the server, or its URL.</source>
        <translation>请给出启动服务器的命令，或其 URL。</translation>
    </message>
</context>
<context>
    <name>BackendController</name>
    <message>
        <source>Asking the server for its models…</source>
        <translation>正在向服务器查询可用模型…</translation>
    </message>
    <message>
        <source>The server offers 1 model. Choose it and press Connect.</source>
        <translation>服务器提供 1 个模型。选择它，然后点击“连接”。</translation>
    </message>
    <message>
        <source>The server offers {count} models. Choose one and press Connect.</source>
        <translation>服务器提供 {count} 个模型。选择一个，然后点击“连接”。</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>Connecting to {url}…</source>
        <translation>正在连接 {url}…</translation>
    </message>
    <message>
        <source>Connected: “{name}” at {url}. Replies come from this server; token probabilities are not available.</source>
        <translation>已连接：{url} 上的“{name}”。回复来自该服务器；无法查看词元概率。</translation>
    </message>
    <message>
        <source>Connected to {name} at {url}.</source>
        <translation>已连接到 {url} 上的 {name}。</translation>
    </message>
    <message>
        <source>Could not connect to the server.</source>
        <translation>无法连接到服务器。</translation>
    </message>
    <message>
        <source>Try again</source>
        <translation>重试</translation>
    </message>
    <message>
        <source>{message} The previous model ({name}) is still in use.</source>
        <translation>{message} 仍在使用之前的模型（{name}）。</translation>
    </message>
    <message>
        <source>Use the local model</source>
        <translation>使用本地模型</translation>
    </message>
    <message>
        <source>Back to the local model {name}.</source>
        <translation>已切换回本地模型 {name}。</translation>
    </message>
    <message>
        <source>Enter the server&apos;s address (and key, if it needs one), then Connect.</source>
        <translation>请输入服务器地址（如需要，还有密钥），然后点击“连接”。</translation>
    </message>
    <message>
        <source>No system keyring here: the API key is kept only until chatgui closes.</source>
        <translation>此系统没有密钥环：API 密钥只保留到 chatgui 关闭为止。</translation>
    </message>
</context>
<context>
    <name>BackendPanel</name>
    <message>
        <source>Backend</source>
        <translation>后端</translation>
    </message>
    <message>
        <source>Server address</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <source>API key</source>
        <translation>API 密钥</translation>
    </message>
    <message>
        <source>Where the API key is kept</source>
        <translation>API 密钥的保存位置</translation>
    </message>
    <message>
        <source>Server model</source>
        <translation>服务器模型</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>List the server&apos;s models</source>
        <translation>列出服务器的模型</translation>
    </message>
    <message>
        <source>Connect</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>Connect to the server</source>
        <translation>连接到服务器</translation>
    </message>
    <message>
        <source>Backend state</source>
        <translation>后端状态</translation>
    </message>
    <message>
        <source>optional</source>
        <translation>可选</translation>
    </message>
    <message>
        <source>Kept in the system keyring when there is one, else only until chatgui closes; never in settings, chat files or exports.</source>
        <translation>有系统密钥环时保存在其中，否则只保留到 chatgui 关闭为止；绝不写入设置、聊天文件或导出文件。</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>the server&apos;s first model</source>
        <translation>服务器的第一个模型</translation>
    </message>
    <message>
        <source>Local model</source>
        <translation>本地模型</translation>
    </message>
    <message>
        <source>A GGUF model file run by chatgui on this computer.</source>
        <translation>由 chatgui 在这台电脑上运行的 GGUF 模型文件。</translation>
    </message>
    <message>
        <source>OpenAI-compatible server</source>
        <translation>OpenAI 兼容服务器</translation>
    </message>
    <message>
        <source>A server that speaks the OpenAI chat API (vLLM, llama.cpp server, Ollama, chatgui serve, a hosted API).</source>
        <translation>支持 OpenAI 聊天 API 的服务器（vLLM、llama.cpp server、Ollama、chatgui serve、托管 API）。</translation>
    </message>
</context>
<context>
    <name>Catalog</name>
    <message>
        <source>Tiny and fast: short chats and simple questions in English. Often wrong on facts and code.</source>
        <translation>小而快：适合英文的简短对话和简单问题。事实和代码常常出错。</translation>
    </message>
    <message>
        <source>Small coding helper: short functions, explaining snippets, quick answers.</source>
        <translation>小型编程助手：编写短函数、解释代码片段、快速回答。</translation>
    </message>
    <message>
        <source>Better answers: code, reasoning about code, general questions. Slower than the small ones.</source>
        <translation>回答更好：代码、代码推理、一般问题。比小模型慢。</translation>
    </message>
    <message>
        <source>Text completion, not chat: continues the text you give it. A base for experiments.</source>
        <translation>文本续写，不是对话：接着你给的文字往下写。适合做实验的基础模型。</translation>
    </message>
    <message>
        <source>English</source>
        <translation>英语</translation>
    </message>
    <message>
        <source>Chinese</source>
        <translation>中文</translation>
    </message>
    <message>
        <source>many programming languages</source>
        <translation>多种编程语言</translation>
    </message>
    <message>
        <source>many others (pretrained, multilingual)</source>
        <translation>多种其他语言（预训练，多语种）</translation>
    </message>
    <message>
        <source>100+ others</source>
        <translation>另外 100 多种</translation>
    </message>
    <message>
        <source>140+ others</source>
        <translation>另外 140 多种</translation>
    </message>
    <message>
        <source>A solid small all-rounder: chat, summaries, rewriting.</source>
        <translation>可靠的小型全能模型：聊天、摘要、改写。</translation>
    </message>
    <message>
        <source>Arabic</source>
        <translation>阿拉伯语</translation>
    </message>
    <message>
        <source>Czech</source>
        <translation>捷克语</translation>
    </message>
    <message>
        <source>Dutch</source>
        <translation>荷兰语</translation>
    </message>
    <message>
        <source>French</source>
        <translation>法语</translation>
    </message>
    <message>
        <source>German</source>
        <translation>德语</translation>
    </message>
    <message>
        <source>Good writing and many languages; friendly chat.</source>
        <translation>文笔好，支持多种语言；聊天友好。</translation>
    </message>
    <message>
        <source>Hindi</source>
        <translation>印地语</translation>
    </message>
    <message>
        <source>IBM&apos;s small business assistant: summaries, extraction, plain answers.</source>
        <translation>IBM 的小型业务助手：摘要、信息提取、直白的回答。</translation>
    </message>
    <message>
        <source>Italian</source>
        <translation>意大利语</translation>
    </message>
    <message>
        <source>Japanese</source>
        <translation>日语</translation>
    </message>
    <message>
        <source>Korean</source>
        <translation>韩语</translation>
    </message>
    <message>
        <source>Newer hybrid Qwen (linear attention in 3 of 4 layers): long chats stay light.</source>
        <translation>较新的混合架构 Qwen（四层中有三层为线性注意力）：长对话也不占太多内存。</translation>
    </message>
    <message>
        <source>OpenAI&apos;s open model: strong reasoning (its analysis is shown in the Thinking section), fast for its size.</source>
        <translation>OpenAI 的开放模型：推理能力强（其分析显示在“思考”部分），就其规模而言速度快。</translation>
    </message>
    <message>
        <source>Portuguese</source>
        <translation>葡萄牙语</translation>
    </message>
    <message>
        <source>Small, open and careful: chat and reasoning (it can think before answering).</source>
        <translation>小巧、开放、稳妥：聊天与推理（回答前可以先思考）。</translation>
    </message>
    <message>
        <source>Spanish</source>
        <translation>西班牙语</translation>
    </message>
    <message>
        <source>Strong at maths and reasoning for its size; weaker on facts.</source>
        <translation>就其规模而言数学和推理很强；事实知识较弱。</translation>
    </message>
    <message>
        <source>Thai</source>
        <translation>泰语</translation>
    </message>
    <message>
        <source>The best answers here: a Mixture-of-Experts that reads ~3B weights a token, so it runs like a small model if memory allows.</source>
        <translation>这里回答最好的模型：混合专家模型，每个词元只读取约 30 亿个权重，内存足够时运行起来像小模型一样快。</translation>
    </message>
    <message>
        <source>Thinks before it answers (shown in the Thinking section): code, maths, reasoning.</source>
        <translation>先思考再回答（显示在“思考”部分）：代码、数学、推理。</translation>
    </message>
    <message>
        <source>many others</source>
        <translation>其他许多语言</translation>
    </message>
    <message>
        <source>Embeddings for Knowledge: finds passages by meaning as well as by their words. Small and fast; English only.</source>
        <translation>用于知识库的嵌入模型：不仅按字词，也按含义查找段落。小而快；仅限英语。</translation>
    </message>
    <message>
        <source>Embeddings for Knowledge: finds passages by meaning as well as by their words. Better than BGE small, about four times slower; English.</source>
        <translation>用于知识库的嵌入模型：不仅按字词，也按含义查找段落。比 BGE small 更好，约慢四倍；英语。</translation>
    </message>
    <message>
        <source>Embeddings for Knowledge: the best of these at finding passages by meaning, in many languages; the slowest to index.</source>
        <translation>用于知识库的嵌入模型：其中按含义查找段落最好的一个，支持多种语言；建立索引最慢。</translation>
    </message>
</context>
<context>
    <name>ChatLibrary</name>
    <message>
        <source>{error} The chat stays open here and saving will be tried again with the next change.</source>
        <translation>{error} 对话仍在此处打开，下次更改时会再次尝试保存。</translation>
    </message>
    <message>
        <source>Saving failed.</source>
        <translation>保存失败。</translation>
    </message>
    <message>
        <source>Some files could not be used:</source>
        <translation>部分文件无法使用：</translation>
    </message>
</context>
<context>
    <name>ChatListPanel</name>
    <message>
        <source>New chat</source>
        <translation>新建对话</translation>
    </message>
    <message>
        <source>Today</source>
        <translation>今天</translation>
    </message>
    <message>
        <source>Yesterday</source>
        <translation>昨天</translation>
    </message>
    <message>
        <source>Previous 7 days</source>
        <translation>过去 7 天</translation>
    </message>
    <message>
        <source>Older</source>
        <translation>更早</translation>
    </message>
    <message>
        <source>Search chats</source>
        <translation>搜索对话</translation>
    </message>
    <message>
        <source>Search chats (Ctrl+F)</source>
        <translation>搜索对话（Ctrl+F）</translation>
    </message>
    <message>
        <source>Chats</source>
        <translation>对话</translation>
    </message>
    <message>
        <source>New chat (Ctrl+N)</source>
        <translation>新建对话（Ctrl+N）</translation>
    </message>
    <message>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <source>Export as {format}…</source>
        <translation>导出为 {format}…</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>删除</translation>
    </message>
</context>
<context>
    <name>CompareDialog</name>
    <message>
        <source>Compare presets</source>
        <translation>比较预设</translation>
    </message>
    <message>
        <source>Question: {text}</source>
        <translation>问题：{text}</translation>
    </message>
    <message>
        <source>Preset {name}</source>
        <translation>预设 {name}</translation>
    </message>
    <message>
        <source>Reply {name}</source>
        <translation>回复 {name}</translation>
    </message>
    <message>
        <source>Keep {name}</source>
        <translation>保留 {name}</translation>
    </message>
    <message>
        <source>Generate both</source>
        <translation>生成两条回复</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Keep both</source>
        <translation>两条都保留</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Seed {seed} for both</source>
        <translation>两条回复均使用随机种子 {seed}</translation>
    </message>
    <message>
        <source>waiting…</source>
        <translation>等待中…</translation>
    </message>
    <message>
        <source>Generate again</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <source>writing…</source>
        <translation>生成中…</translation>
    </message>
    <message>
        <source>not written</source>
        <translation>未生成</translation>
    </message>
    <message>
        <source>writing… ({count} prompt tokens)</source>
        <translation>生成中…（提示词 {count} 个词元）</translation>
    </message>
    <message>
        <source>{count} tokens · {speed} tok/s · stopped</source>
        <translation>{count} 个词元 · {speed} 词元/秒 · 已停止</translation>
    </message>
    <message>
        <source>{count} tokens · {speed} tok/s</source>
        <translation>{count} 个词元 · {speed} 词元/秒</translation>
    </message>
</context>
<context>
    <name>ConfirmDialog</name>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
</context>
<context>
    <name>ConsentDialog</name>
    <message>
        <source>Allow a tool call?</source>
        <translation>允许调用工具吗？</translation>
    </message>
    <message>
        <source>from the MCP server “{server}”</source>
        <translation>来自 MCP 服务器“{server}”</translation>
    </message>
    <message>
        <source>built into chatgui</source>
        <translation>chatgui 内置</translation>
    </message>
    <message>
        <source>The model wants to call &lt;b&gt;{tool}&lt;/b&gt; ({where}).</source>
        <translation>模型想要调用 &lt;b&gt;{tool}&lt;/b&gt;（{where}）。</translation>
    </message>
    <message>
        <source>Arguments:</source>
        <translation>参数：</translation>
    </message>
    <message>
        <source>Deny</source>
        <translation>拒绝</translation>
    </message>
    <message>
        <source>Allow once</source>
        <translation>仅允许这一次</translation>
    </message>
    <message>
        <source>Always in this chat</source>
        <translation>在此对话中始终允许</translation>
    </message>
    <message>
        <source>Always</source>
        <translation>始终允许</translation>
    </message>
</context>
<context>
    <name>ConversationView</name>
    <message>
        <source>Ask anything. Enter sends, Shift+Enter starts a new line.</source>
        <translation>想问什么都可以。按 Enter 发送，Shift+Enter 换行。</translation>
    </message>
    <message>
        <source>Conversation</source>
        <translation>对话内容</translation>
    </message>
    <message>
        <source>↓ Latest</source>
        <translation>↓ 最新</translation>
    </message>
    <message>
        <source>Jump to the latest message</source>
        <translation>跳到最新消息</translation>
    </message>
</context>
<context>
    <name>DocumentChips</name>
    <message>
        <source>not readable</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>{name}: {reason}</source>
        <translation>{name}：{reason}</translation>
    </message>
    <message>
        <source>{count} pages</source>
        <translation>{count} 页</translation>
    </message>
    <message>
        <source>1 page</source>
        <translation>1 页</translation>
    </message>
    <message>
        <source>{count} tokens</source>
        <translation>{count} 个词元</translation>
    </message>
    <message>
        <source>whole</source>
        <translation>全文</translation>
    </message>
    <message>
        <source>relevant passages ({count})</source>
        <translation>相关段落（{count}）</translation>
    </message>
    <message>
        <source>{name}, page {page}</source>
        <translation>{name}，第 {page} 页</translation>
    </message>
    <message>
        <source>{name}, line {line}</source>
        <translation>{name}，第 {line} 行</translation>
    </message>
    <message>
        <source>Remove this file</source>
        <translation>移除此文件</translation>
    </message>
    <message>
        <source>{path}
Too long for the context: the passages that best matched the question were sent.</source>
        <translation>{path}
超出上下文长度：已发送与问题最相关的段落。</translation>
    </message>
    <message>
        <source>Open the file</source>
        <translation>打开文件</translation>
    </message>
    <message>
        <source>The file is no longer at {path}</source>
        <translation>文件已不在 {path}</translation>
    </message>
    <message>
        <source>{count} more</source>
        <translation>另外 {count} 个</translation>
    </message>
    <message>
        <source>Sources:</source>
        <translation>来源：</translation>
    </message>
    <message>
        <source>Show the passage</source>
        <translation>显示该段落</translation>
    </message>
</context>
<context>
    <name>DocumentsController</name>
    <message>
        <source>Use knowledge folders</source>
        <translation>使用知识文件夹</translation>
    </message>
    <message>
        <source>Search your knowledge folders for each message of this chat and show the passages used as sources</source>
        <translation>此对话的每条消息都搜索你的知识文件夹，并把用到的段落列为来源</translation>
    </message>
    <message>
        <source>Attach files</source>
        <translation>附加文件</translation>
    </message>
    <message>
        <source>Documents (*.pdf *.docx *.txt *.md *.csv *.json *.html *.htm *.py *.rst);;All files (*)</source>
        <translation>文档 (*.pdf *.docx *.txt *.md *.csv *.json *.html *.htm *.py *.rst);;所有文件 (*)</translation>
    </message>
    <message>
        <source>A file could not be attached: {error}</source>
        <translation>无法附加文件：{error}</translation>
    </message>
    <message>
        <source>“{name}” cannot be attached: {reason}</source>
        <translation>无法附加“{name}”：{reason}</translation>
    </message>
    <message>
        <source>Reading {count} file(s)…</source>
        <translation>正在读取 {count} 个文件…</translation>
    </message>
    <message>
        <source>A file is still being read: your message is sent once it is attached.</source>
        <translation>仍在读取文件：附加完成后即可发送消息。</translation>
    </message>
    <message>
        <source>Your message is being prepared with its documents.</source>
        <translation>正在结合文档准备你的消息。</translation>
    </message>
    <message>
        <source>the files do not fit in the model&apos;s context</source>
        <translation>这些文件放不进模型的上下文</translation>
    </message>
    <message>
        <source>Your message could not be prepared with its documents: {error}. It is back in the box.</source>
        <translation>无法结合文档准备你的消息：{error}。消息已放回输入框。</translation>
    </message>
</context>
<context>
    <name>DownloadRow</name>
    <message>
        <source>Pause</source>
        <translation>暂停</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>继续</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Waiting for another download of this model…</source>
        <translation>正在等待此模型的另一个下载…</translation>
    </message>
    <message>
        <source>Checking the file… {0}%</source>
        <translation>正在校验文件… {0}%</translation>
    </message>
    <message>
        <source>Installing…</source>
        <translation>正在安装…</translation>
    </message>
    <message>
        <source>{0} / {1} · {2}% · {3} MB/s · {4} left</source>
        <translation>{0} / {1} · {2}% · {3} MB/s · 剩余 {4}</translation>
    </message>
    <message>
        <source>Paused at {0} of {1}</source>
        <translation>已暂停：{0} / {1}</translation>
    </message>
    <message>
        <source>Paused at {0}</source>
        <translation>已暂停：{0}</translation>
    </message>
</context>
<context>
    <name>EngineWorker</name>
    <message>
        <source>This reply was made with a different model file (sha256 {wanted}…) than the one loaded now ({name}, sha256 {loaded}…), so replaying it would not give the same answer. Load the model file it was made with to replay it.</source>
        <translation>此回复由另一个模型文件（sha256 {wanted}…）生成，与当前加载的模型（{name}，sha256 {loaded}…）不同，重放不会得到相同的回答。请加载生成它的模型文件后再重放。</translation>
    </message>
    <message>
        <source>Cannot load model {path}: there is not enough memory.</source>
        <translation>无法加载模型 {path}：内存不足。</translation>
    </message>
    <message>
        <source>Cannot load model {path}: {error}</source>
        <translation>无法加载模型 {path}：{error}</translation>
    </message>
    <message>
        <source>No model is loaded. Choose a model file in the settings.</source>
        <translation>尚未加载模型。请在设置中选择模型文件。</translation>
    </message>
    <message>
        <source>The reply could not start: {error}</source>
        <translation>无法开始回复：{error}</translation>
    </message>
    <message>
        <source>The GPU ran out of memory while writing the reply. Try a shorter chat, a smaller context length, or the CPU.</source>
        <translation>生成回复时 GPU 显存不足。请尝试缩短对话、减小上下文长度，或改用 CPU。</translation>
    </message>
    <message>
        <source>The reply failed: {error}</source>
        <translation>回复失败：{error}</translation>
    </message>
</context>
<context>
    <name>ExplainController</name>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Token view</source>
        <translation>词元视图(&amp;T)</translation>
    </message>
    <message>
        <source>Colour each token of a reply by the probability it was drawn with</source>
        <translation>按抽取概率为回复中的每个词元着色</translation>
    </message>
    <message>
        <source>Sampling &amp;inspector</source>
        <translation>采样检查器(&amp;I)</translation>
    </message>
    <message>
        <source>&amp;Chat</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Compare presets…</source>
        <translation>比较预设(&amp;C)…</translation>
    </message>
    <message>
        <source>Write the next reply twice, with two presets, side by side</source>
        <translation>用两个预设分别生成下一条回复，并排比较</translation>
    </message>
    <message>
        <source>This reply has no recorded settings and seed, so it cannot be replayed.</source>
        <translation>此回复没有记录设置和随机种子，无法重放。</translation>
    </message>
    <message>
        <source>No model is loaded: load the model this reply was made with to replay it.</source>
        <translation>尚未加载模型：请加载生成此回复的模型后再重放。</translation>
    </message>
    <message>
        <source>Replay needs the local model, on both ends: a remote server does not promise the same answer for the same seed, and its model file cannot be checked.</source>
        <translation>重放要求原回复和现在都使用本地模型：远程服务器不保证相同随机种子给出相同回答，也无法校验其模型文件。</translation>
    </message>
    <message>
        <source>This reply&apos;s recorded tokens are incomplete, so it cannot be replayed.</source>
        <translation>此回复记录的词元不完整，无法重放。</translation>
    </message>
    <message>
        <source>The model file&apos;s hash was not recorded with this reply, so it could not be checked.</source>
        <translation>此回复没有记录模型文件的哈希值，因此无法校验。</translation>
    </message>
    <message>
        <source>It was made on {made} and is replayed on {now}, so the text may differ.</source>
        <translation>它在 {made} 上生成，现在在 {now} 上重放，文本可能会不同。</translation>
    </message>
    <message>
        <source>Replaying. {notes}</source>
        <translation>正在重放。{notes}</translation>
    </message>
    <message>
        <source>another model</source>
        <translation>另一个模型</translation>
    </message>
    <message>
        <source>Not replayed: this reply was made with {name} (sha256 {wanted}…), but the loaded model file {loaded} is different (sha256 {have}…). Replaying it would not give the same answer.</source>
        <translation>未重放：此回复由 {name}（sha256 {wanted}…）生成，而当前加载的模型文件 {loaded} 与之不同（sha256 {have}…）。重放不会得到相同的回答。</translation>
    </message>
    <message>
        <source>The file {path} has changed since the reply was made.</source>
        <translation>文件 {path} 在生成此回复后已被更改。</translation>
    </message>
    <message>
        <source>Load {name} to replay it.</source>
        <translation>请加载 {name} 后再重放。</translation>
    </message>
    <message>
        <source>Load {name}</source>
        <translation>加载 {name}</translation>
    </message>
    <message>
        <source>That file ({path}) is no longer there.</source>
        <translation>该文件（{path}）已不存在。</translation>
    </message>
    <message>
        <source>Replay: identical to the original reply.</source>
        <translation>重放结果与原回复完全相同。</translation>
    </message>
    <message>
        <source>The replay differs from the original reply from character {number} on. The device, the context length or the chat before it may have changed.</source>
        <translation>重放结果从第 {number} 个字符起与原回复不同。设备、上下文长度或之前的对话内容可能已改变。</translation>
    </message>
    <message>
        <source>Type a question first: Compare writes its answer with two presets.</source>
        <translation>请先输入问题：“比较”会用两个预设分别生成回答。</translation>
    </message>
</context>
<context>
    <name>HistoryActions</name>
    <message>
        <source>The chat database {path} is damaged (corrupt).</source>
        <translation>聊天数据库 {path} 已损坏。</translation>
    </message>
    <message>
        <source>The file {path} is not a chat database (it is not SQLite).</source>
        <translation>文件 {path} 不是聊天数据库（不是 SQLite 文件）。</translation>
    </message>
    <message>
        <source>The chat database {path} is truncated: part of the file is missing.</source>
        <translation>聊天数据库 {path} 被截断：文件的一部分丢失了。</translation>
    </message>
    <message>
        <source>The chat database {path} is damaged: changes saved in its journal (-wal file) cannot be read.</source>
        <translation>聊天数据库 {path} 已损坏：保存在其日志（-wal 文件）中的更改无法读取。</translation>
    </message>
    <message>
        <source>The chat database {path} is locked by another program.</source>
        <translation>聊天数据库 {path} 被另一个程序锁定。</translation>
    </message>
    <message>
        <source>The chat database {path} was written by a newer version of chatgui.</source>
        <translation>聊天数据库 {path} 由更新版本的 chatgui 写入。</translation>
    </message>
    <message>
        <source>The chat database {path} cannot be read.</source>
        <translation>无法读取聊天数据库 {path}。</translation>
    </message>
    <message>
        <source>Import chats</source>
        <translation>导入聊天</translation>
    </message>
    <message>
        <source>JSON (*.json)</source>
        <translation>JSON 文件 (*.json)</translation>
    </message>
    <message>
        <source>Importing {name}…</source>
        <translation>正在导入 {name}…</translation>
    </message>
    <message>
        <source>{title} (imported)</source>
        <translation>{title}（导入）</translation>
    </message>
    <message>
        <source>Could not import {name}: {error}</source>
        <translation>无法导入 {name}：{error}</translation>
    </message>
    <message>
        <source>Imported 1 chat from {name}.</source>
        <translation>已从 {name} 导入 1 个对话。</translation>
    </message>
    <message>
        <source>Imported {count} chats from {name}.</source>
        <translation>已从 {name} 导入 {count} 个聊天。</translation>
    </message>
    <message>
        <source>Nothing was changed.</source>
        <translation>没有做任何更改。</translation>
    </message>
    <message>
        <source>Restoring a backup keeps the damaged file beside it.</source>
        <translation>恢复备份时，损坏的文件会保留在旁边。</translation>
    </message>
    <message>
        <source>Restore the backup of {date}</source>
        <translation>恢复 {date} 的备份</translation>
    </message>
    <message>
        <source>Close the other program and start chatgui again.</source>
        <translation>请关闭另一个程序，然后重新启动 chatgui。</translation>
    </message>
    <message>
        <source>Could not restore the backup: {error}</source>
        <translation>无法恢复备份：{error}</translation>
    </message>
    <message>
        <source>Restored the backup of {date}.</source>
        <translation>已恢复 {date} 的备份。</translation>
    </message>
</context>
<context>
    <name>InputBar</name>
    <message>
        <source>Remove the pasted text</source>
        <translation>移除粘贴的文本</translation>
    </message>
    <message>
        <source>Attach files (or drop them on the window)</source>
        <translation>附加文件（或把文件拖到窗口上）</translation>
    </message>
    <message>
        <source>Attach files</source>
        <translation>附加文件</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <source>Send (Enter)</source>
        <translation>发送（Enter）</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Stop the reply (Esc)</source>
        <translation>停止回复（Esc）</translation>
    </message>
    <message>
        <source>Pasted text: {count} characters (sent with your message)</source>
        <translation>粘贴的文本：{count} 个字符（随消息一起发送）</translation>
    </message>
</context>
<context>
    <name>InspectorDock</name>
    <message>
        <source>Thin bar: the model&apos;s probability. Thick bar: after the repetition penalty and temperature; blue if the token survives top-k, top-p and min-p, grey if filtered out (✗ says by which). Right: the probability it is drawn with. {mark}: used recently, so lowered by the repetition penalty.</source>
        <translation>细条：模型给出的概率。粗条：经过重复惩罚和温度调整后的概率；通过 top-k、top-p 和 min-p 筛选的词元为蓝色，被过滤的为灰色（✗ 后注明原因）。右侧：最终的抽取概率。{mark}：最近出现过，因此被重复惩罚降低。</translation>
    </message>
    <message>
        <source>Sampling inspector</source>
        <translation>采样检查器</translation>
    </message>
    <message>
        <source>Back to the next reply</source>
        <translation>回到下一条回复</translation>
    </message>
    <message>
        <source>Inspect the first token of the next reply instead of a token of this one</source>
        <translation>改为检查下一条回复的第一个词元，而不是这条回复中的词元</translation>
    </message>
    <message>
        <source>{survivors} of {vocab} tokens can be drawn; the {shown} most likely are shown ({mass} of the sampling probability).</source>
        <translation>{vocab} 个词元中有 {survivors} 个可被抽取；显示概率最高的 {shown} 个（占采样概率的 {mass}）。</translation>
    </message>
</context>
<context>
    <name>InspectorWorker</name>
    <message>
        <source>No model is loaded.</source>
        <translation>尚未加载模型。</translation>
    </message>
    <message>
        <source>The sampling inspector needs a model that runs on this computer.</source>
        <translation>采样检查器需要在本机运行的模型。</translation>
    </message>
</context>
<context>
    <name>InstalledRow</name>
    <message>
        <source>used where it is</source>
        <translation>在原位置使用</translation>
    </message>
    <message>
        <source>in the models folder</source>
        <translation>在模型文件夹中</translation>
    </message>
    <message>
        <source>Load</source>
        <translation>加载</translation>
    </message>
    <message>
        <source>Forget…</source>
        <translation>移除…</translation>
    </message>
    <message>
        <source>Delete…</source>
        <translation>删除…</translation>
    </message>
    <message>
        <source>Show in folder</source>
        <translation>在文件夹中显示</translation>
    </message>
</context>
<context>
    <name>KnowledgePage</name>
    <message>
        <source>Knowledge folders</source>
        <translation>知识文件夹</translation>
    </message>
    <message>
        <source>A chat with “Use knowledge folders” on searches these folders for each message and cites the passages it used. Only changed files are read again.</source>
        <translation>开启“使用知识文件夹”的对话会为每条消息搜索这些文件夹，并引用用到的段落。只有改动过的文件会被重新读取。</translation>
    </message>
    <message>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Index again</source>
        <translation>重新索引</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>暂停</translation>
    </message>
    <message>
        <source>Search by meaning with:</source>
        <translation>按含义搜索，使用：</translation>
    </message>
    <message>
        <source>An embedding model finds passages that say what you ask in other words. Embedding models are on the Models page (File &gt; Models…).</source>
        <translation>嵌入模型能找到用别的说法表达你所问内容的段落。嵌入模型在“模型”页面（文件 &gt; 模型…）中。</translation>
    </message>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Reason</source>
        <translation>原因</translation>
    </message>
    <message>
        <source>The knowledge index cannot be used: {error}</source>
        <translation>无法使用知识索引：{error}</translation>
    </message>
    <message>
        <source>Words only (no embedding model)</source>
        <translation>仅按字词（无嵌入模型）</translation>
    </message>
    <message>
        <source>Add a knowledge folder</source>
        <translation>添加知识文件夹</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>继续</translation>
    </message>
    <message>
        <source>Paused: indexing goes on after the file it is on when resumed.</source>
        <translation>已暂停：继续后，索引从当前文件之后接着进行。</translation>
    </message>
    <message>
        <source>indexed</source>
        <translation>已索引</translation>
    </message>
    <message>
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>Embedding {folder}: {done} of {total} passages</source>
        <translation>正在嵌入 {folder}：{done} / {total} 个段落</translation>
    </message>
    <message>
        <source>Indexing {folder}: {done} of {total} files ({name})</source>
        <translation>正在索引 {folder}：第 {done} / {total} 个文件（{name}）</translation>
    </message>
    <message>
        <source>Indexing could not run: {error}</source>
        <translation>无法进行索引：{error}</translation>
    </message>
    <message>
        <source>Indexing stopped.</source>
        <translation>索引已停止。</translation>
    </message>
    <message>
        <source>Up to date: {indexed} read, {unchanged} unchanged, {failed} could not be read, {removed} removed.</source>
        <translation>已是最新：读取 {indexed} 个，未改动 {unchanged} 个，无法读取 {failed} 个，移除 {removed} 个。</translation>
    </message>
    <message>
        <source>{count} passages embedded.</source>
        <translation>已嵌入 {count} 个段落。</translation>
    </message>
    <message>
        <source>The embedding model could not be used ({error}): the folders are searched by their words.</source>
        <translation>无法使用嵌入模型（{error}）：将按字词搜索这些文件夹。</translation>
    </message>
</context>
<context>
    <name>LanguageMenu</name>
    <message>
        <source>The new language is used from the next start of chatgui.</source>
        <translation>新的界面语言将在下次启动 chatgui 时生效。</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <source>System language</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <source>Restart now</source>
        <translation>立即重启</translation>
    </message>
</context>
<context>
    <name>LegacyMigration</name>
    <message>
        <source>Moving your chats to the new format…</source>
        <translation>正在把你的对话转换为新格式…</translation>
    </message>
    <message>
        <source>Moving your chats to the new format: {done} of {total}…</source>
        <translation>正在把你的对话转换为新格式：{done} / {total}…</translation>
    </message>
</context>
<context>
    <name>LocalServer</name>
    <message>
        <source>Loading {name} for the server…</source>
        <translation>正在为服务器加载 {name}…</translation>
    </message>
    <message>
        <source>Cannot serve the model: {error}</source>
        <translation>无法提供模型服务：{error}</translation>
    </message>
    <message>
        <source>Cannot serve on {host}:{port}: the port is already in use. Choose another port (0 picks a free one).</source>
        <translation>无法在 {host}:{port} 上提供服务：端口已被占用。请选择其他端口（0 表示自动选择空闲端口）。</translation>
    </message>
    <message>
        <source>Cannot serve on {host}:{port}: the port is not allowed. Choose another port (0 picks a free one).</source>
        <translation>无法在 {host}:{port} 上提供服务：不允许使用该端口。请选择其他端口（0 表示自动选择空闲端口）。</translation>
    </message>
    <message>
        <source>Cannot serve on {host}:{port}: {error}</source>
        <translation>无法在 {host}:{port} 上提供服务：{error}</translation>
    </message>
    <message>
        <source>Serving “{name}” to programs on this computer (it has its own copy of the model, on the CPU).</source>
        <translation>正在向本机程序提供“{name}”（服务器在 CPU 上使用自己的模型副本）。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Sampling inspector: how the next token is chosen (Ctrl+Shift+I)</source>
        <translation>采样检查器：下一个词元是如何选出的（Ctrl+Shift+I）</translation>
    </message>
    <message>
        <source>Sampling inspector</source>
        <translation>采样检查器</translation>
    </message>
    <message>
        <source>Settings panel: model, system prompt, sampling (Ctrl+,)</source>
        <translation>设置面板：模型、系统提示词、采样（Ctrl+,）</translation>
    </message>
    <message>
        <source>Settings panel</source>
        <translation>设置面板</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;New chat</source>
        <translation>新建对话(&amp;N)</translation>
    </message>
    <message>
        <source>&amp;Models…</source>
        <translation>模型(&amp;M)…</translation>
    </message>
    <message>
        <source>&amp;Trash…</source>
        <translation>回收站(&amp;T)…</translation>
    </message>
    <message>
        <source>&amp;Knowledge folders…</source>
        <translation>知识文件夹(&amp;K)…</translation>
    </message>
    <message>
        <source>Export as {format}…</source>
        <translation>导出为 {format}…</translation>
    </message>
    <message>
        <source>&amp;Import chats…</source>
        <translation>导入聊天(&amp;I)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Chat</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Search chats</source>
        <translation>搜索对话(&amp;S)</translation>
    </message>
    <message>
        <source>S&amp;top reply</source>
        <translation>停止回复(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Generate 3 answers</source>
        <translation>生成 3 个回答(&amp;G)</translation>
    </message>
    <message>
        <source>Write three answers to your last message at once; browse them with &lt; &gt;</source>
        <translation>一次为你的最后一条消息写出三个回答；用 &lt; &gt; 浏览</translation>
    </message>
    <message>
        <source>&amp;Rename chat</source>
        <translation>重命名对话(&amp;R)</translation>
    </message>
    <message>
        <source>T&amp;ools…</source>
        <translation>工具(&amp;O)…</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Settings panel</source>
        <translation>设置面板(&amp;S)</translation>
    </message>
    <message>
        <source>this chat</source>
        <translation>此对话</translation>
    </message>
    <message>
        <source>“{title}” was moved to the trash (kept {days} days).</source>
        <translation>“{title}”已移到回收站（保留 {days} 天）。</translation>
    </message>
    <message>
        <source>Undo</source>
        <translation>撤销</translation>
    </message>
    <message>
        <source>A reply is still being written: wait for it, or stop it (Esc). Your message stays in the box.</source>
        <translation>回复仍在生成中：请等待它完成，或先停止它（Esc）。你的消息会保留在输入框中。</translation>
    </message>
    <message>
        <source>Several answers at once need the local model.</source>
        <translation>同时生成多个回答需要使用本地模型。</translation>
    </message>
    <message>
        <source>Ask something first: then three answers can be written at once.</source>
        <translation>请先提一个问题，然后才能一次生成三个回答。</translation>
    </message>
    <message>
        <source>Temperature 0 always picks the most likely word, so Regenerate writes the same answer again. Raise the temperature for a different one.</source>
        <translation>温度为 0 时总是选择最可能的词，因此“重新生成”会写出相同的回答。提高温度才能得到不同的回答。</translation>
    </message>
    <message>
        <source>The seed is fixed ({seed}), so Regenerate writes the same answer again. Use a random seed for a different one.</source>
        <translation>随机种子已固定（{seed}），因此“重新生成”会写出相同的回答。改用随机种子才能得到不同的回答。</translation>
    </message>
    <message>
        <source>Use a random seed</source>
        <translation>使用随机种子</translation>
    </message>
    <message>
        <source>New chats will start with this system prompt.</source>
        <translation>新对话将使用此系统提示词。</translation>
    </message>
    <message>
        <source>Nothing to export yet.</source>
        <translation>还没有可导出的内容。</translation>
    </message>
    <message>
        <source>{format} (*{suffix})</source>
        <translation>{format} 文件 (*{suffix})</translation>
    </message>
    <message>
        <source>Export chat</source>
        <translation>导出对话</translation>
    </message>
    <message>
        <source>Could not export to {path}: {error}</source>
        <translation>无法导出到 {path}：{error}</translation>
    </message>
    <message>
        <source>Exported to {path}</source>
        <translation>已导出到 {path}</translation>
    </message>
    <message>
        <source>Settings not saved: {error}</source>
        <translation>设置未保存：{error}</translation>
    </message>
</context>
<context>
    <name>MessageInput</name>
    <message>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <source>Type a message. Enter sends, Shift+Enter adds a line.</source>
        <translation>输入消息。按 Enter 发送，Shift+Enter 换行。</translation>
    </message>
</context>
<context>
    <name>MessageWidget</name>
    <message>
        <source>Your message</source>
        <translation>你的消息</translation>
    </message>
    <message>
        <source>Assistant message</source>
        <translation>助手消息</translation>
    </message>
    <message>
        <source>You</source>
        <translation>你</translation>
    </message>
    <message>
        <source>Assistant</source>
        <translation>助手</translation>
    </message>
    <message>
        <source>[… {count} more characters not shown]</source>
        <translation>[… 另有 {count} 个字符未显示]</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Copy message</source>
        <translation>复制消息</translation>
    </message>
    <message>
        <source>Copy code</source>
        <translation>复制代码</translation>
    </message>
    <message>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <source>Regenerate answer</source>
        <translation>重新生成回答</translation>
    </message>
    <message>
        <source>Replay</source>
        <translation>重放</translation>
    </message>
    <message>
        <source>Replay: regenerate with the recorded settings and seed</source>
        <translation>重放：用记录的设置和随机种子重新生成</translation>
    </message>
    <message>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <source>Edit and resend</source>
        <translation>编辑并重新发送</translation>
    </message>
    <message>
        <source>{count} tokens</source>
        <translation>{count} 个词元</translation>
    </message>
    <message>
        <source>{preset} preset</source>
        <translation>{preset}预设</translation>
    </message>
    <message>
        <source>branched at token {number}</source>
        <translation>从第 {number} 个词元分支</translation>
    </message>
    <message>
        <source>replay</source>
        <translation>重放</translation>
    </message>
    <message>
        <source>stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <source>cut at the token limit</source>
        <translation>已达词元上限而截断</translation>
    </message>
    <message>
        <source>interrupted</source>
        <translation>已中断</translation>
    </message>
    <message>
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>Block {number}: {first_line}</source>
        <translation>代码块 {number}：{first_line}</translation>
    </message>
    <message>
        <source>Edit message</source>
        <translation>编辑消息</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
</context>
<context>
    <name>ModelCard</name>
    <message>
        <source>Fits</source>
        <translation>适合</translation>
    </message>
    <message>
        <source>May be slow</source>
        <translation>可能较慢</translation>
    </message>
    <message>
        <source>Won&apos;t fit</source>
        <translation>放不下</translation>
    </message>
    <message>
        <source>Unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>In use</source>
        <translation>使用中</translation>
    </message>
    <message>
        <source>This model is loaded now</source>
        <translation>此模型当前已加载</translation>
    </message>
    <message>
        <source>From this machine&apos;s free memory, the file size and the KV cache at the chosen context length</source>
        <translation>根据本机的可用内存、文件大小以及所选上下文长度下的 KV 缓存估算</translation>
    </message>
    <message>
        <source>chat</source>
        <translation>对话</translation>
    </message>
    <message>
        <source>embeddings for Knowledge, not chat</source>
        <translation>用于知识库的嵌入模型，不能聊天</translation>
    </message>
    <message>
        <source>text completion, not chat</source>
        <translation>文本续写（非对话模型）</translation>
    </message>
    <message>
        <source>about {0}</source>
        <translation>约 {0}</translation>
    </message>
    <message>
        <source>{0} MoE, {1} active</source>
        <translation>{0} 混合专家，激活 {1}</translation>
    </message>
    <message>
        <source>parameters</source>
        <translation>参数</translation>
    </message>
    <message>
        <source>context {0}k</source>
        <translation>上下文 {0}k</translation>
    </message>
    <message>
        <source>~{0} tok/s</source>
        <translation>约 {0} 词元/秒</translation>
    </message>
    <message>
        <source>Speed estimated from the weights read per token ({0}) at an assumed memory bandwidth of {1} GB/s (a typical CPU; a GPU is faster)</source>
        <translation>速度按每个词元读取的权重（{0}）和假定的 {1} GB/s 内存带宽估算（典型 CPU；GPU 更快）</translation>
    </message>
    <message>
        <source>Languages: {0}.</source>
        <translation>语言：{0}。</translation>
    </message>
    <message>
        <source>Download</source>
        <translation>下载</translation>
    </message>
    <message>
        <source>Load</source>
        <translation>加载</translation>
    </message>
    <message>
        <source>Delete…</source>
        <translation>删除…</translation>
    </message>
    <message>
        <source>Show in folder</source>
        <translation>在文件夹中显示</translation>
    </message>
    <message>
        <source>Installed · {0} on disk</source>
        <translation>已安装 · 占用磁盘 {0}</translation>
    </message>
</context>
<context>
    <name>ModelController</name>
    <message>
        <source>Model downloaded.</source>
        <translation>模型已下载。</translation>
    </message>
    <message>
        <source>fits this computer</source>
        <translation>适合本机</translation>
    </message>
    <message>
        <source>may be slow on this computer</source>
        <translation>在本机上可能较慢</translation>
    </message>
    <message>
        <source>too big for this computer</source>
        <translation>对本机来说太大</translation>
    </message>
    <message>
        <source>fit unknown</source>
        <translation>无法判断是否适合</translation>
    </message>
    <message>
        <source>The model is still downloading. You can send once it has loaded.</source>
        <translation>模型仍在下载中。加载完成后即可发送。</translation>
    </message>
    <message>
        <source>Still connecting to the server…</source>
        <translation>仍在连接服务器…</translation>
    </message>
    <message>
        <source>The model is still loading…</source>
        <translation>模型仍在加载中…</translation>
    </message>
    <message>
        <source>Choose a model</source>
        <translation>选择模型</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>No model is loaded yet: download one or choose a file above. Your message stays in the box.</source>
        <translation>尚未加载模型：请在上方下载一个模型或选择文件。你的消息保留在输入框中。</translation>
    </message>
    <message>
        <source>Loading {name}…</source>
        <translation>正在加载 {name}…</translation>
    </message>
    <message>
        <source>{name} was deleted; it answers until chatgui is closed.</source>
        <translation>{name} 已删除；在关闭 chatgui 之前它仍可回答。</translation>
    </message>
    <message>
        <source>The weight cache could not be cleared: {error}</source>
        <translation>无法清除权重缓存：{error}</translation>
    </message>
    <message>
        <source>Weight cache cleared ({size} MB freed); models load from their files next time.</source>
        <translation>权重缓存已清除（释放 {size} MB）；下次将直接从模型文件加载。</translation>
    </message>
    <message>
        <source>Model {name} loaded.</source>
        <translation>模型 {name} 已加载。</translation>
    </message>
    <message>
        <source>{name} loaded, with a warning: {warnings}</source>
        <translation>已加载 {name}，但有一条警告：{warnings}</translation>
    </message>
    <message>
        <source>The model could not be loaded.</source>
        <translation>无法加载模型。</translation>
    </message>
    <message>
        <source>{message} Using {name} instead.</source>
        <translation>{message} 改用 {name}。</translation>
    </message>
    <message>
        <source>{message} The previous model ({name}) is still in use.</source>
        <translation>{message} 仍在使用之前的模型（{name}）。</translation>
    </message>
    <message>
        <source>The model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>The default model mostly speaks English: its answers in other languages are often poor. To chat in your language, choose a model that speaks it (a .gguf file) in the settings panel.</source>
        <translation>默认模型主要使用英文，中文回答往往质量不高。如需用中文对话，请在设置面板中选择一个支持中文的模型（.gguf 文件）。</translation>
    </message>
    <message>
        <source>Downloading {name}…</source>
        <translation>正在下载 {name}…</translation>
    </message>
    <message>
        <source>{name} could not be downloaded: {error}</source>
        <translation>无法下载 {name}：{error}</translation>
    </message>
</context>
<context>
    <name>ModelPill</name>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>No model</source>
        <translation>无模型</translation>
    </message>
    <message>
        <source>No model is loaded: click to choose one.</source>
        <translation>未加载模型：点击选择一个。</translation>
    </message>
    <message>
        <source>Answers come from the server at {url}</source>
        <translation>回答来自服务器 {url}</translation>
    </message>
    <message>
        <source>Ready. Click to switch models.</source>
        <translation>就绪。点击切换模型。</translation>
    </message>
    <message>
        <source>{name} could not be loaded</source>
        <translation>无法加载 {name}</translation>
    </message>
    <message>
        <source>Installed models</source>
        <translation>已安装的模型</translation>
    </message>
    <message>
        <source>Download or manage models…</source>
        <translation>下载或管理模型…</translation>
    </message>
    <message>
        <source>Choose a .gguf file…</source>
        <translation>选择 .gguf 文件…</translation>
    </message>
</context>
<context>
    <name>ModelsFeature</name>
    <message>
        <source>It is the model in use: it answers until chatgui is closed, and then there is no model left.</source>
        <translation>这是正在使用的模型：在关闭 chatgui 之前它仍可回答，之后将没有可用的模型。</translation>
    </message>
    <message>
        <source>It is the model in use: chatgui will switch to {name}.</source>
        <translation>这是正在使用的模型：chatgui 将切换到 {name}。</translation>
    </message>
</context>
<context>
    <name>ModelsPage</name>
    <message>
        <source>Models</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Add a .gguf file…</source>
        <translation>添加 .gguf 文件…</translation>
    </message>
    <message>
        <source>Download from URL…</source>
        <translation>从网址下载…</translation>
    </message>
    <message>
        <source>Fit labels are for a {0}-token context on this machine.</source>
        <translation>适配标签按本机 {0} 词元的上下文估算。</translation>
    </message>
    <message>
        <source>Other models on this machine</source>
        <translation>本机上的其他模型</translation>
    </message>
    <message>
        <source>Add a .gguf file</source>
        <translation>添加 .gguf 文件</translation>
    </message>
    <message>
        <source>Copy {0} into the models folder, or use it where it is?</source>
        <translation>将 {0} 复制到模型文件夹，还是在原位置使用？</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Use in place</source>
        <translation>在原位置使用</translation>
    </message>
    <message>
        <source>Cancel the download?</source>
        <translation>取消下载？</translation>
    </message>
    <message>
        <source>{0} of {1} are downloaded already. Delete them, or pause the download and keep them for later?</source>
        <translation>{1} 已下载 {0}。要删除已下载的部分，还是暂停下载并保留以后继续？</translation>
    </message>
    <message>
        <source>Delete the downloaded part</source>
        <translation>删除已下载的部分</translation>
    </message>
    <message>
        <source>Pause instead</source>
        <translation>改为暂停</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <source>Keep downloading</source>
        <translation>继续下载</translation>
    </message>
    <message>
        <source>Download from URL</source>
        <translation>从网址下载</translation>
    </message>
    <message>
        <source>Address of a .gguf file:</source>
        <translation>.gguf 文件的网址：</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>正在开始…</translation>
    </message>
    <message>
        <source>Forget {0}? The file stays where it is: {1}</source>
        <translation>移除 {0}？文件会保留在原位置：{1}</translation>
    </message>
    <message>
        <source>Delete {0} ({1})? It will have to be downloaded again to be used.</source>
        <translation>删除 {0}（{1}）？之后使用需要重新下载。</translation>
    </message>
    <message>
        <source>Delete model</source>
        <translation>删除模型</translation>
    </message>
    <message>
        <source>Forget</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>删除</translation>
    </message>
    <message>
        <source>{0} cannot be added: it is not a GGUF model file (or cannot be read). Choose a .gguf file.</source>
        <translation>无法添加 {0}：它不是 GGUF 模型文件（或无法读取）。请选择 .gguf 文件。</translation>
    </message>
    <message>
        <source>Copying {0}…</source>
        <translation>正在复制 {0}…</translation>
    </message>
    <message>
        <source>Only http:// and https:// addresses can be downloaded.</source>
        <translation>只能下载 http:// 或 https:// 网址。</translation>
    </message>
    <message>
        <source>{0} is ready.</source>
        <translation>{0} 已就绪。</translation>
    </message>
    <message>
        <source>Download failed</source>
        <translation>下载失败</translation>
    </message>
</context>
<context>
    <name>ModelsWindow</name>
    <message>
        <source>Models</source>
        <translation>模型</translation>
    </message>
</context>
<context>
    <name>Notice</name>
    <message>
        <source>Information notice</source>
        <translation>信息提示</translation>
    </message>
    <message>
        <source>Warning notice</source>
        <translation>警告提示</translation>
    </message>
    <message>
        <source>Error notice</source>
        <translation>错误提示</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>关闭</translation>
    </message>
</context>
<context>
    <name>PlainErrors</name>
    <message>
        <source>“{name}” is not a model file chatgui can use: it is not in the GGUF format. Choose a .gguf file.</source>
        <translation>“{name}”不是 chatgui 能使用的模型文件：它不是 GGUF 格式。请选择一个 .gguf 文件。</translation>
    </message>
    <message>
        <source>The model file “{name}” was not found. It may have been moved or deleted.</source>
        <translation>找不到模型文件“{name}”。它可能已被移动或删除。</translation>
    </message>
    <message>
        <source>The model file “{name}” is incomplete (perhaps an unfinished download). Download it again or choose another file.</source>
        <translation>模型文件“{name}”不完整（可能是未完成的下载）。请重新下载或选择其他文件。</translation>
    </message>
    <message>
        <source>“{name}” is a folder. Choose a .gguf file.</source>
        <translation>“{name}”是一个文件夹。请选择一个 .gguf 文件。</translation>
    </message>
    <message>
        <source>The model file “{name}” cannot be read (check that you may open it).</source>
        <translation>无法读取模型文件“{name}”（请检查你是否有权限打开它）。</translation>
    </message>
    <message>
        <source>There is not enough memory to load “{name}”. Close other programs or choose a smaller model.</source>
        <translation>内存不足，无法加载“{name}”。请关闭其他程序或选择更小的模型。</translation>
    </message>
    <message>
        <source>The model file “{name}” cannot be used: {reason}</source>
        <translation>无法使用模型文件“{name}”：{reason}</translation>
    </message>
    <message>
        <source>Could not reach {host}: check the address or your connection.</source>
        <translation>无法连接 {host}：请检查地址或网络连接。</translation>
    </message>
    <message>
        <source>{host} has no file for this address that chatgui may download (error {code}): check the address.</source>
        <translation>{host} 在此地址上没有可供 chatgui 下载的文件（错误 {code}）：请检查地址。</translation>
    </message>
    <message>
        <source>{host} could not send the file just now (error {code}): try again later.</source>
        <translation>{host} 暂时无法发送文件（错误 {code}）：请稍后再试。</translation>
    </message>
    <message>
        <source>The connection to {host} keeps dropping: try again later (the download goes on where it stopped).</source>
        <translation>与 {host} 的连接不断中断：请稍后再试（下载会从中断处继续）。</translation>
    </message>
</context>
<context>
    <name>Preset</name>
    <message>
        <source>Precise</source>
        <translation>精确</translation>
    </message>
    <message>
        <source>Balanced</source>
        <translation>均衡</translation>
    </message>
    <message>
        <source>Creative</source>
        <translation>创意</translation>
    </message>
    <message>
        <source>Custom</source>
        <translation>自定义</translation>
    </message>
</context>
<context>
    <name>RemoteConnector</name>
    <message>
        <source>Cannot list the server&apos;s models: {error}</source>
        <translation>无法列出服务器的模型：{error}</translation>
    </message>
    <message>
        <source>The server offers no models.</source>
        <translation>服务器没有提供任何模型。</translation>
    </message>
    <message>
        <source>The server at {url} offers no models.</source>
        <translation>{url} 上的服务器没有提供任何模型。</translation>
    </message>
    <message>
        <source>The server at {url} has no model “{model}”. It offers: {models}.</source>
        <translation>{url} 上的服务器没有模型“{model}”。它提供的模型有：{models}。</translation>
    </message>
    <message>
        <source>Cannot connect: {error}</source>
        <translation>无法连接：{error}</translation>
    </message>
</context>
<context>
    <name>ReplyController</name>
    <message>
        <source>{count} older messages did not fit in the model&apos;s context and were left out of this reply.</source>
        <translation>有 {count} 条较早的消息超出了模型的上下文长度，本次回复未包含它们。</translation>
    </message>
    <message>
        <source>{message} Your message was kept: edit it, or start a new chat.</source>
        <translation>{message} 你的消息已保留：可以编辑它，或新建对话。</translation>
    </message>
    <message>
        <source>Writing {n} answers: {done} done · {counts} tokens</source>
        <translation>正在写 {n} 个回答：已完成 {done} 个 · {counts} 个词元</translation>
    </message>
</context>
<context>
    <name>SafeTextBrowser</name>
    <message>
        <source>[image: {name}]</source>
        <translation>[图片：{name}]</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Copy code block</source>
        <translation>复制代码块</translation>
    </message>
    <message>
        <source>Copied</source>
        <translation>已复制</translation>
    </message>
</context>
<context>
    <name>SamplingChart</name>
    <message>
        <source>filtered</source>
        <translation>已过滤</translation>
    </message>
    <message>
        <source>Next-token probabilities</source>
        <translation>下一个词元的概率</translation>
    </message>
    <message>
        <source>token</source>
        <translation>词元</translation>
    </message>
    <message>
        <source>probability</source>
        <translation>概率</translation>
    </message>
    <message>
        <source>drawn with</source>
        <translation>抽取概率</translation>
    </message>
    <message>
        <source>kept</source>
        <translation>保留</translation>
    </message>
    <message>
        <source>removed</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>“{token}”  (token {id}, rank {rank})</source>
        <translation>“{token}”（词元 {id}，排名 {rank}）</translation>
    </message>
    <message>
        <source>model: {p}</source>
        <translation>模型：{p}</translation>
    </message>
    <message>
        <source>after {stages}: {p}</source>
        <translation>经过{stages}后：{p}</translation>
    </message>
    <message>
        <source>drawn with probability {p}</source>
        <translation>抽取概率 {p}</translation>
    </message>
    <message>
        <source>this token was drawn in the reply</source>
        <translation>回复中抽取的正是这个词元</translation>
    </message>
</context>
<context>
    <name>SamplingInspector</name>
    <message>
        <source>Token {number} of this reply: “{token}” was drawn (▶). The distribution it was drawn from, under the current settings:</source>
        <translation>此回复的第 {number} 个词元：抽取了“{token}”（▶）。在当前设置下，它所来自的概率分布：</translation>
    </message>
    <message>
        <source>First token of the next reply to “{question}”, under the current settings:</source>
        <translation>在当前设置下，对“{question}”的下一条回复的第一个词元：</translation>
    </message>
    <message>
        <source>Send a message: the inspector then shows how the next token is chosen.</source>
        <translation>发送一条消息后，检查器会显示下一个词元是如何选出的。</translation>
    </message>
    <message>
        <source>Waiting for the reply to finish…</source>
        <translation>正在等待回复完成…</translation>
    </message>
</context>
<context>
    <name>ServeController</name>
    <message>
        <source>Serving at</source>
        <translation>服务地址</translation>
    </message>
    <message>
        <source>Load a local model to serve it.</source>
        <translation>加载本地模型后即可提供服务。</translation>
    </message>
    <message>
        <source>Stopped serving {old}: the app&apos;s model changed. Turn it on again to serve {new}.</source>
        <translation>已停止提供 {old}：应用的模型已更换。重新开启即可提供 {new}。</translation>
    </message>
    <message>
        <source>Ready to serve {name}: tick the box to start.</source>
        <translation>可以提供 {name}：勾选此项即可开始。</translation>
    </message>
    <message>
        <source>Load a local model first.</source>
        <translation>请先加载本地模型。</translation>
    </message>
    <message>
        <source>Serving at {url}</source>
        <translation>服务地址：{url}</translation>
    </message>
    <message>
        <source>OpenAI-compatible API of this app&apos;s model (select to copy)</source>
        <translation>本应用模型的 OpenAI 兼容 API（选中即可复制）</translation>
    </message>
</context>
<context>
    <name>ServeGroup</name>
    <message>
        <source>Serve (OpenAI API)</source>
        <translation>提供服务（OpenAI API）</translation>
    </message>
    <message>
        <source>Serve this model on {host}, port</source>
        <translation>在 {host} 上提供此模型，端口</translation>
    </message>
    <message>
        <source>Serve this model to other programs</source>
        <translation>向其他程序提供此模型</translation>
    </message>
    <message>
        <source>Other programs on this computer can then use the model through the OpenAI chat API. The server loads its own copy of the model on the CPU (more memory).</source>
        <translation>本机上的其他程序即可通过 OpenAI 聊天 API 使用该模型。服务器会在 CPU 上加载自己的模型副本（占用更多内存）。</translation>
    </message>
    <message>
        <source>Server port</source>
        <translation>服务器端口</translation>
    </message>
    <message>
        <source>any</source>
        <translation>任意</translation>
    </message>
    <message>
        <source>Server address</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <source>not serving</source>
        <translation>未在提供服务</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Copy the server address</source>
        <translation>复制服务器地址</translation>
    </message>
    <message>
        <source>Server state</source>
        <translation>服务器状态</translation>
    </message>
</context>
<context>
    <name>SettingsPanel</name>
    <message>
        <source>Auto</source>
        <translation>自动</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Model file</source>
        <translation>模型文件</translation>
    </message>
    <message>
        <source>a .gguf file</source>
        <translation>.gguf 文件</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>Choose a model file</source>
        <translation>选择模型文件</translation>
    </message>
    <message>
        <source>Models…</source>
        <translation>模型…</translation>
    </message>
    <message>
        <source>Download a model from the catalog, or manage the ones on this computer</source>
        <translation>从模型目录下载模型，或管理本机上的模型</translation>
    </message>
    <message>
        <source>Default model</source>
        <translation>默认模型</translation>
    </message>
    <message>
        <source>Use the default model</source>
        <translation>使用默认模型</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Context length</source>
        <translation>上下文长度</translation>
    </message>
    <message>
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <source>Context length in tokens. Automatic: the model&apos;s own, at most 4,096 (each token of context takes memory); enter a number to use more.</source>
        <translation>上下文长度（词元数）。自动：使用模型自身的长度，最多 4,096（每个上下文词元都占用内存）；输入数值可使用更长的上下文。</translation>
    </message>
    <message>
        <source>Load model</source>
        <translation>加载模型</translation>
    </message>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>Context</source>
        <translation>上下文</translation>
    </message>
    <message>
        <source>Weight cache</source>
        <translation>权重缓存</translation>
    </message>
    <message>
        <source>Quantized weights repacked for this computer, kept so that a model loads faster the next time. Safe to clear: it is made again.</source>
        <translation>为本机重新打包的量化权重，保留下来以便下次更快加载模型。可以放心清除：需要时会重新生成。</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清除</translation>
    </message>
    <message>
        <source>Clear the weight cache</source>
        <translation>清除权重缓存</translation>
    </message>
    <message>
        <source>Cache</source>
        <translation>缓存</translation>
    </message>
    <message>
        <source>Fast CPU kernels are not installed (no C compiler when chatgui was installed): models run slower on the CPU.</source>
        <translation>未安装快速 CPU 内核（安装 chatgui 时没有 C 编译器）：模型在 CPU 上运行较慢。</translation>
    </message>
    <message>
        <source>Fast CPU kernels</source>
        <translation>快速 CPU 内核</translation>
    </message>
    <message>
        <source>Model options</source>
        <translation>模型选项</translation>
    </message>
    <message>
        <source>System prompt (this chat)</source>
        <translation>系统提示词（当前对话）</translation>
    </message>
    <message>
        <source>System prompt</source>
        <translation>系统提示词</translation>
    </message>
    <message>
        <source>e.g. You are a helpful assistant.</source>
        <translation>例如：你是一个乐于助人的助手。</translation>
    </message>
    <message>
        <source>Use for new chats</source>
        <translation>用于新对话</translation>
    </message>
    <message>
        <source>Use this system prompt for new chats</source>
        <translation>新对话使用此系统提示词</translation>
    </message>
    <message>
        <source>Sampling (next reply)</source>
        <translation>采样（下一条回复）</translation>
    </message>
    <message>
        <source>Preset</source>
        <translation>预设</translation>
    </message>
    <message>
        <source>Reset</source>
        <translation>重置</translation>
    </message>
    <message>
        <source>Reset sampling settings</source>
        <translation>重置采样设置</translation>
    </message>
    <message>
        <source>Temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <source>Repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <source>Maximum new tokens</source>
        <translation>最大新词元数</translation>
    </message>
    <message>
        <source>Random</source>
        <translation>随机</translation>
    </message>
    <message>
        <source>Random seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <source>Reply as JSON</source>
        <translation>以 JSON 格式回复</translation>
    </message>
    <message>
        <source>The reply is always a JSON object that parses (the model is only allowed tokens that keep it valid JSON)</source>
        <translation>回复始终是可以解析的 JSON 对象（模型只能选择保持 JSON 有效的词元）</translation>
    </message>
    <message>
        <source>Repetition window</source>
        <translation>重复检测窗口</translation>
    </message>
    <message>
        <source>How many recent tokens the repetition penalty looks at</source>
        <translation>重复惩罚检查的最近词元数</translation>
    </message>
    <message>
        <source>DRY</source>
        <translation>DRY</translation>
    </message>
    <message>
        <source>DRY multiplier</source>
        <translation>DRY 倍数</translation>
    </message>
    <message>
        <source>Penalizes continuing a sequence the text already has (0 turns DRY off; 0.8 is usual)</source>
        <translation>惩罚延续文中已出现过的序列（0 关闭 DRY；常用 0.8）</translation>
    </message>
    <message>
        <source>DRY base</source>
        <translation>DRY 底数</translation>
    </message>
    <message>
        <source>How fast the penalty grows with each further repeated token</source>
        <translation>每多重复一个词元，惩罚增长的速度</translation>
    </message>
    <message>
        <source>DRY allowed length</source>
        <translation>DRY 允许长度</translation>
    </message>
    <message>
        <source>Repeats up to this many tokens are not penalized</source>
        <translation>不超过这么多词元的重复不受惩罚</translation>
    </message>
    <message>
        <source>DRY sequence breakers</source>
        <translation>DRY 序列断点</translation>
    </message>
    <message>
        <source>A repeat never reaches back past a token holding one of these strings (a JSON list)</source>
        <translation>重复不会越过包含这些字符串之一的词元向前计算（JSON 列表）</translation>
    </message>
    <message>
        <source>0 always picks the most likely token</source>
        <translation>为 0 时总是选择概率最高的词元</translation>
    </message>
    <message>
        <source>greedy</source>
        <translation>贪心</translation>
    </message>
    <message>
        <source>Top-k</source>
        <translation>Top-k</translation>
    </message>
    <message>
        <source>0 turns top-k off</source>
        <translation>为 0 时关闭 top-k</translation>
    </message>
    <message>
        <source>top-k</source>
        <translation>top-k</translation>
    </message>
    <message>
        <source>Top-p</source>
        <translation>Top-p</translation>
    </message>
    <message>
        <source>Keep the most likely tokens that together reach this probability</source>
        <translation>保留累计概率达到此值的最可能词元</translation>
    </message>
    <message>
        <source>top-p</source>
        <translation>top-p</translation>
    </message>
    <message>
        <source>Min-p</source>
        <translation>Min-p</translation>
    </message>
    <message>
        <source>Drop tokens less likely than this fraction of the most likely one</source>
        <translation>舍弃概率低于最可能词元概率的这一比例的词元</translation>
    </message>
    <message>
        <source>min-p</source>
        <translation>min-p</translation>
    </message>
    <message>
        <source>XTC</source>
        <translation>XTC</translation>
    </message>
    <message>
        <source>XTC probability</source>
        <translation>XTC 概率</translation>
    </message>
    <message>
        <source>How often the most likely choices are left out, to vary the wording (0 turns XTC off)</source>
        <translation>最可能的选项被排除的频率，让措辞更多样（0 关闭 XTC）</translation>
    </message>
    <message>
        <source>XTC threshold</source>
        <translation>XTC 阈值</translation>
    </message>
    <message>
        <source>Tokens at least this likely count as top choices (above 0.5 XTC does nothing)</source>
        <translation>概率不低于此值的词元算作最优选项（高于 0.5 时 XTC 不起作用）</translation>
    </message>
    <message>
        <source>Above 1 makes repeating earlier tokens less likely</source>
        <translation>大于 1 时降低重复先前词元的可能性</translation>
    </message>
    <message>
        <source>A new seed for every reply; untick to repeat a reply exactly</source>
        <translation>每条回复使用新的随机种子；取消勾选可精确复现回复</translation>
    </message>
    <message>
        <source>Max new tokens</source>
        <translation>最大新词元数</translation>
    </message>
    <message>
        <source>Advanced</source>
        <translation>高级</translation>
    </message>
    <message>
        <source>Not a JSON list of strings (e.g. [&quot;\n&quot;, &quot;:&quot;]); the last valid list is used</source>
        <translation>不是 JSON 字符串列表（例如 [&quot;\n&quot;, &quot;:&quot;]）；将使用上一个有效的列表</translation>
    </message>
    <message>
        <source>Automatic ({count} tokens)</source>
        <translation>自动（{count} 个词元）</translation>
    </message>
    <message>
        <source>{size} MB on disk</source>
        <translation>占用磁盘 {size} MB</translation>
    </message>
    <message>
        <source>Choose a model</source>
        <translation>选择模型</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
</context>
<context>
    <name>SiblingNavigator</name>
    <message>
        <source>Previous version</source>
        <translation>上一个版本</translation>
    </message>
    <message>
        <source>Next version</source>
        <translation>下一个版本</translation>
    </message>
    <message>
        <source>Version</source>
        <translation>版本</translation>
    </message>
</context>
<context>
    <name>SingleInstance</name>
    <message>
        <source>Another chatgui (process {pid}) is using the data folder {folder}.</source>
        <translation>另一个 chatgui（进程 {pid}）正在使用数据文件夹 {folder}。</translation>
    </message>
    <message>
        <source>Another chatgui is using the data folder {folder}.</source>
        <translation>另一个 chatgui 正在使用数据文件夹 {folder}。</translation>
    </message>
    <message>
        <source>It did not answer when asked to show its window. Close it (or end that process) and start chatgui again.</source>
        <translation>请求它显示窗口时没有响应。请关闭它（或结束该进程），然后重新启动 chatgui。</translation>
    </message>
    <message>
        <source>chatgui cannot start: {error}</source>
        <translation>chatgui 无法启动：{error}</translation>
    </message>
    <message>
        <source>chatgui locks its data folder {folder} so that a second chatgui cannot overwrite its chats. Make the folder writable (or choose another with CHATGUI_DATA_DIR) and start again.</source>
        <translation>chatgui 会锁定其数据文件夹 {folder}，以免另一个 chatgui 覆盖其中的聊天。请让该文件夹可写（或用 CHATGUI_DATA_DIR 选择另一个文件夹），然后重新启动。</translation>
    </message>
</context>
<context>
    <name>StatusBar</name>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>进度</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>No model</source>
        <translation>无模型</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Context used</source>
        <translation>已用上下文</translation>
    </message>
    <message>
        <source>Speed of the last reply</source>
        <translation>上一条回复的速度</translation>
    </message>
    <message>
        <source>Remote</source>
        <translation>远程</translation>
    </message>
    <message>
        <source>Replies come from the server at {url}</source>
        <translation>回复来自 {url} 上的服务器</translation>
    </message>
    <message>
        <source>Context: – / {max}</source>
        <translation>上下文：– / {max}</translation>
    </message>
    <message>
        <source>Context: ≈–</source>
        <translation>上下文：≈–</translation>
    </message>
    <message>
        <source>Context: {used} / {max}</source>
        <translation>上下文：{used} / {max}</translation>
    </message>
    <message>
        <source>Context: ≈{used} tokens</source>
        <translation>上下文：≈{used} 个词元</translation>
    </message>
    <message>
        <source>First token {seconds} s · {speed} tok/s</source>
        <translation>首个词元 {seconds} 秒 · {speed} 词元/秒</translation>
    </message>
    <message>
        <source>First token {seconds} s</source>
        <translation>首个词元 {seconds} 秒</translation>
    </message>
</context>
<context>
    <name>ThemeMenu</name>
    <message>
        <source>Follow the system</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <source>Light</source>
        <translation>浅色</translation>
    </message>
    <message>
        <source>Dark</source>
        <translation>深色</translation>
    </message>
    <message>
        <source>&amp;Theme</source>
        <translation>主题(&amp;T)</translation>
    </message>
</context>
<context>
    <name>ThinkingSection</name>
    <message>
        <source>Show or hide the model&apos;s thinking</source>
        <translation>显示或隐藏模型的思考过程</translation>
    </message>
    <message>
        <source>Thinking</source>
        <translation>思考过程</translation>
    </message>
    <message>
        <source>Thinking…</source>
        <translation>思考中…</translation>
    </message>
</context>
<context>
    <name>TokenBody</name>
    <message>
        <source>Probability each token was drawn with: {chips} · hover or click a token for its alternatives</source>
        <translation>每个词元的抽取概率：{chips} · 悬停或点击词元可查看备选词元</translation>
    </message>
    <message>
        <source>Probability each token was drawn with (model probability): {chips} · hover or click a token for its alternatives</source>
        <translation>每个词元的抽取概率（模型概率）：{chips} · 悬停或点击词元可查看备选词元</translation>
    </message>
</context>
<context>
    <name>TokenBrowser</name>
    <message>
        <source>Reply tokens coloured by probability</source>
        <translation>按概率着色的回复词元</translation>
    </message>
</context>
<context>
    <name>TokenPopup</name>
    <message>
        <source>Token alternatives</source>
        <translation>备选词元</translation>
    </message>
    <message>
        <source>Token {number}</source>
        <translation>第 {number} 个词元</translation>
    </message>
    <message>
        <source>model: the model&apos;s own probability · sampled: after temperature, top-k, top-p, min-p and the repetition penalty</source>
        <translation>模型：模型自身给出的概率 · 采样后：经过温度、top-k、top-p、min-p 和重复惩罚之后的概率</translation>
    </message>
    <message>
        <source>model: the model&apos;s own probability (this reply was recorded without after-sampling values)</source>
        <translation>模型：模型自身给出的概率（此回复记录时没有采样后的数值）</translation>
    </message>
    <message>
        <source>Token</source>
        <translation>词元</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Sampled</source>
        <translation>采样后</translation>
    </message>
    <message>
        <source>{token}   ✓ chosen</source>
        <translation>{token}   ✓ 已选</translation>
    </message>
    <message>
        <source>Continue with this</source>
        <translation>从这里继续</translation>
    </message>
    <message>
        <source>Regenerate the reply from here, starting with this token (kept as a new version)</source>
        <translation>从此处以这个词元开头重新生成回复（保存为新版本）</translation>
    </message>
    <message>
        <source>Inspect sampling here</source>
        <translation>检查此处的采样</translation>
    </message>
    <message>
        <source>Show this position&apos;s next-token distribution in the sampling inspector</source>
        <translation>在采样检查器中显示此位置的下一个词元概率分布</translation>
    </message>
</context>
<context>
    <name>TokenView</name>
    <message>
        <source>Token {number}</source>
        <translation>第 {number} 个词元</translation>
    </message>
    <message>
        <source>token</source>
        <translation>词元</translation>
    </message>
    <message>
        <source>model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>sampled</source>
        <translation>采样后</translation>
    </message>
    <message>
        <source>Click for more</source>
        <translation>点击查看更多</translation>
    </message>
    <message>
        <source>filtered out</source>
        <translation>已过滤</translation>
    </message>
</context>
<context>
    <name>ToolCallCard</name>
    <message>
        <source>Arguments</source>
        <translation>参数</translation>
    </message>
    <message>
        <source>Result</source>
        <translation>结果</translation>
    </message>
    <message>
        <source>Error</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>Calling {tool}…</source>
        <translation>正在调用 {tool}…</translation>
    </message>
    <message>
        <source>{tool}: no result</source>
        <translation>{tool}：没有结果</translation>
    </message>
    <message>
        <source>Called {tool}</source>
        <translation>已调用 {tool}</translation>
    </message>
    <message>
        <source>{tool} failed</source>
        <translation>{tool} 失败</translation>
    </message>
    <message>
        <source>{tool}: denied, not run</source>
        <translation>{tool}：已拒绝，未运行</translation>
    </message>
    <message>
        <source>{tool}: stopped</source>
        <translation>{tool}：已停止</translation>
    </message>
</context>
<context>
    <name>ToolsDialog</name>
    <message>
        <source>Tools</source>
        <translation>工具</translation>
    </message>
    <message>
        <source>Tools let the model calculate, look things up and use MCP servers while it answers (local models only). Each tool asks before its first call.</source>
        <translation>工具让模型在回答时可以计算、查找信息并使用 MCP 服务器（仅限本地模型）。每个工具在第一次调用前都会先征求你的同意。</translation>
    </message>
    <message>
        <source>Built-in tools</source>
        <translation>内置工具</translation>
    </message>
    <message>
        <source>Calculator</source>
        <translation>计算器</translation>
    </message>
    <message>
        <source>Date and time</source>
        <translation>日期和时间</translation>
    </message>
    <message>
        <source>Search chat history</source>
        <translation>搜索聊天记录</translation>
    </message>
    <message>
        <source>MCP servers</source>
        <translation>MCP 服务器</translation>
    </message>
    <message>
        <source>Allow every tool of this server without asking</source>
        <translation>允许此服务器的所有工具，无需询问</translation>
    </message>
    <message>
        <source>Add…</source>
        <translation>添加…</translation>
    </message>
    <message>
        <source>Import mcp.json…</source>
        <translation>导入 mcp.json…</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Check</source>
        <translation>检查</translation>
    </message>
    <message>
        <source>Most rounds of tool calls in one reply</source>
        <translation>一条回复中工具调用的最多轮数</translation>
    </message>
    <message>
        <source>Forget “Always” answers</source>
        <translation>忘记“始终允许”的选择</translation>
    </message>
    <message>
        <source>No MCP server is configured.</source>
        <translation>尚未配置 MCP 服务器。</translation>
    </message>
    <message>
        <source>Not checked yet: press Check to start it and list its tools.</source>
        <translation>尚未检查：点击“检查”以启动它并列出其工具。</translation>
    </message>
    <message>
        <source>{file} is too large to be an MCP configuration.</source>
        <translation>{file} 太大，不可能是 MCP 配置文件。</translation>
    </message>
    <message>
        <source>{file} cannot be read ({error}).</source>
        <translation>无法读取 {file}（{error}）。</translation>
    </message>
    <message>
        <source>{file} is not a text file.</source>
        <translation>{file} 不是文本文件。</translation>
    </message>
    <message>
        <source>Import MCP servers</source>
        <translation>导入 MCP 服务器</translation>
    </message>
    <message>
        <source>MCP configuration (*.json)</source>
        <translation>MCP 配置 (*.json)</translation>
    </message>
    <message>
        <source>Nothing was imported: {error}</source>
        <translation>未导入任何内容：{error}</translation>
    </message>
    <message>
        <source>{count} servers imported.</source>
        <translation>已导入 {count} 个服务器。</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>正在启动…</translation>
    </message>
    <message>
        <source>Failed: {error}</source>
        <translation>失败：{error}</translation>
    </message>
    <message>
        <source>Running. Tools: {tools}</source>
        <translation>运行中。工具：{tools}</translation>
    </message>
    <message>
        <source>Running, but it offers no tools.</source>
        <translation>运行中，但它不提供任何工具。</translation>
    </message>
</context>
<context>
    <name>TrashDialog</name>
    <message>
        <source>Trash</source>
        <translation>回收站</translation>
    </message>
    <message>
        <source>Deleted chats</source>
        <translation>已删除的对话</translation>
    </message>
    <message>
        <source>Deleted chats stay here for {0} days, then they are gone for good.</source>
        <translation>删除的对话在这里保留 {0} 天，之后将被永久删除。</translation>
    </message>
    <message>
        <source>The trash is empty.</source>
        <translation>回收站是空的。</translation>
    </message>
    <message>
        <source>Empty trash…</source>
        <translation>清空回收站…</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Delete forever</source>
        <translation>永久删除</translation>
    </message>
    <message>
        <source>Delete “{0}” for good? This cannot be undone.</source>
        <translation>永久删除“{0}”？此操作无法撤销。</translation>
    </message>
    <message>
        <source>Delete the {0} chats in the trash for good? This cannot be undone.</source>
        <translation>永久删除回收站中的 {0} 个对话？此操作无法撤销。</translation>
    </message>
    <message>
        <source>New chat</source>
        <translation>新建对话</translation>
    </message>
    <message>
        <source>Empty trash</source>
        <translation>清空回收站</translation>
    </message>
</context>
<context>
    <name>TrashRow</name>
    <message>
        <source>gone for good at the next start</source>
        <translation>下次启动时永久删除</translation>
    </message>
    <message>
        <source>gone for good tomorrow ({0})</source>
        <translation>明天永久删除（{0}）</translation>
    </message>
    <message>
        <source>gone for good on {0} (in {1} days)</source>
        <translation>将于 {0} 永久删除（{1} 天后）</translation>
    </message>
    <message>
        <source>Deleted {0} · {1}</source>
        <translation>删除于 {0} · {1}</translation>
    </message>
    <message>
        <source>Restore</source>
        <translation>恢复</translation>
    </message>
    <message>
        <source>Delete forever</source>
        <translation>永久删除</translation>
    </message>
</context>
<context>
    <name>WelcomeCard</name>
    <message>
        <source>Welcome to chatgui</source>
        <translation>欢迎使用 chatgui</translation>
    </message>
    <message>
        <source>chatgui chats with a language model that runs on this computer: your chats stay here and nothing is sent anywhere. To start, it needs one model.</source>
        <translation>chatgui 使用在这台电脑上运行的语言模型聊天：你的对话留在本机，不会发送到任何地方。开始之前，需要一个模型。</translation>
    </message>
    <message>
        <source>Recommended for this computer</source>
        <translation>推荐给这台电脑</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Or:</source>
        <translation>或者：</translation>
    </message>
    <message>
        <source>Choose a .gguf file…</source>
        <translation>选择 .gguf 文件…</translation>
    </message>
    <message>
        <source>All models…</source>
        <translation>所有模型…</translation>
    </message>
    <message>
        <source>Connect to a server…</source>
        <translation>连接到服务器…</translation>
    </message>
    <message>
        <source>Download ({size})</source>
        <translation>下载（{size}）</translation>
    </message>
    <message>
        <source>Recommended for this computer (downloads are turned off: add its file with “Choose a .gguf file…”)</source>
        <translation>推荐给这台电脑（下载已关闭：请用“选择 .gguf 文件…”添加其文件）</translation>
    </message>
    <message>
        <source>Try again</source>
        <translation>重试</translation>
    </message>
</context>
</TS>
