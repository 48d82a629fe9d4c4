-- Every lead of the leads seed with its scores and tiers, as of the instant the expected scores
-- were written at, 2026-11-01T00:00:00Z, here in Tokyo's time (without as_of, the macro scores as
-- of the start of the dbt run).
{{ config(materialized='table') }}
{{ leadscore.leadscore_scores(ref('leads'), ref('events'), as_of='2026-11-01T09:00:00.000+09:00') }}
