from cellctl.console import main

main()
