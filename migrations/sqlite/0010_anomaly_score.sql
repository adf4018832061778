-- patrol store, sqlite flavour (issue 9): every judged sample keeps the method that drew its band
-- (seasonal, ets, peer, or the EWMA fallback with its reason) and its graded anomaly score in
-- [0, 1], so people can rank and tune; NULL for results without a baseline.
ALTER TABLE results ADD COLUMN baseline_method TEXT;
ALTER TABLE results ADD COLUMN anomaly_score REAL;
