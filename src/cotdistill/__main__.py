from cotdistill.cli import main

main()
