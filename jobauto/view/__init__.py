"""One read-only view of a campaign (a run or a table): status, graph, report."""
