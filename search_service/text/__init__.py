"""Text analysis, the same for indexing and querying: normalize (NFKC width
folding, lowercase, OpenCC) → segment (jieba) → words and grams with offsets
into the original text; the query syntax and synonym groups."""
