"""NOC-side collection: the ingest API, counter→rate maths, the metric schema and the TSDB sink."""
