"""Operations: plain functions over the databases that return a Result.

One module per concern (cells, hosts, instances, services, status, schema).
They never print and never exit; ``cellctl.cli`` renders what they return.
"""
