from fakesvc.common import main

main("berth-runtime-agent")
