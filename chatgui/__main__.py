from chatgui.ui.app import main

raise SystemExit(main())
