"""Feeds: subscriptions (a query's CID and its record set), the prolly trees that let two
nodes compare record sets, what a record carries, local filters, and how all of them read
a query (`queries.compile_query`)."""
