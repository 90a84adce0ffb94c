"""SQLAlchemy Core tables with Nova's names, columns and constraints.

``api`` holds the API database's mapping tables, ``cell`` the cell database
tables cellctl reads and writes (cell0 and every cell share them).
"""
