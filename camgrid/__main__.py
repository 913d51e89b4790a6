from camgrid.cli import main

main()
