"""Storage: abstract stores (``base``), SQL metadata (``sql``), artifacts (``artifacts``),
and the HTTP client of a remote server (``rest``)."""
