"""The OpenSearch engine: the same service on a cluster (sharded, replicated).

Analysis and highlighting stay in the service; the cluster stores passages
and ranks the query plan (:mod:`.version`). :mod:`.engine` keeps versions as
indexes behind an alias, :mod:`.build` analyses and bulk-loads a new one,
:mod:`.schema` is the mapping made from the field table, :mod:`.client` the
connection.
"""
