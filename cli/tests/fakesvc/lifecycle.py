from fakesvc.common import main

main("berth-lifecycle")
