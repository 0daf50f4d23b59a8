"""Domain operations. Services flush; the request (or command) commits once."""
