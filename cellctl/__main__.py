from cellctl.cli import main

main()
