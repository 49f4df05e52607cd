"""Reports built from the store's records (seed 003 §9.4). Pure: records in, text out."""
