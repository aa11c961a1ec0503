from edgeclf.cli import main

main()
