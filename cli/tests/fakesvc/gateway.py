from fakesvc.common import main

main("berth-api-gateway", http=True)
