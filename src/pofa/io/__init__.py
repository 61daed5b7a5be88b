"""Reading study folders (CSV, Excel, Parquet) into tables of text cells."""
