"""Analytics on a columnar replica of the row store: segment evaluation at scale (DuckDB)."""
