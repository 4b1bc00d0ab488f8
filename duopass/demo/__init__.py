"""The lunch-rush demonstration (`duopass demo`): `rush` plays it against a server (`server` is
one of its own), and `netcut` is the TCP proxy that cuts the tills off."""
