from vaecollapse.cli import main

main()
