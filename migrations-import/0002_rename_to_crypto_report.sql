-- Step 1 of the generator's upgrade: the table takes its current name (its sequence too, so
-- that new ids keep coming from it).
ALTER TABLE report RENAME TO crypto_report;
ALTER SEQUENCE report_id_seq RENAME TO crypto_report_id_seq;
ALTER TABLE crypto_report RENAME CONSTRAINT report_pkey TO crypto_report_pkey;
