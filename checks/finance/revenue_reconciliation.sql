-- dqwatch
-- description = "System A and system B revenue must agree every day"
-- connection  = "warehouse"
-- schedule    = "*/15 * * * *"
-- category    = "reconciliation"
-- owners      = ["finance-data@example.com"]
-- tags        = ["finance", "critical"]
-- impact      = ["revenue"]
-- runbook     = "https://wiki.example.com/runbooks/revenue-recon"
-- keys        = ["reconciliation_date"]
-- metric      = "gap"
-- [thresholds]
-- P0 = "> 10000"
-- P2 = "> 100"
SELECT reconciliation_date, ABS(system_a_total - system_b_total) AS gap
FROM revenue_reconciliation
WHERE reconciliation_date >= date('now', '-7 day')
