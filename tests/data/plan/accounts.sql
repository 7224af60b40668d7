CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT, email TEXT, tier TEXT, score INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
INSERT INTO accounts
SELECT printf('acct-%04d', i), 'Name ' || i, '  User' || i || '@Mail.example ',
       CASE WHEN i % 5 = 0 THEN 'gold' ELSE NULL END, i
FROM n;
CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO counters (id, n) VALUES (1, 0), (2, 5);
