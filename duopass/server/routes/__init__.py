"""One router per resource; each route calls one service inside one unit of work."""
