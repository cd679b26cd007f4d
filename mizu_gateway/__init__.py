"""The HTTP gateway (SPEC §9, man/mizu-gateway.7): the repository on the web, a skin over
the core as the command line is. Routes call the same core functions the commands call;
errors become statuses in one place (errors.py); nothing here touches storage. Imported
only by `mizu serve --http`: the web stack stays out of every other command's start-up.
"""
