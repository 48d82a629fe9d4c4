-- The rows where lead_scores differs from what `leadscore score --as-of 2026-11-01T00:00:00Z`
-- writes for the same files (seeds/expected_scores.csv): a lead in one and not the other, a
-- value off by more than 1e-9 or another tier. dbt fails the test when any row comes back.
select
    coalesce(a.lead_id, e.lead_id) as lead_id,
    a.fit as fit, e.fit as expected_fit, a.fit_tier as fit_tier, e.fit_tier as expected_fit_tier,
    a.engagement as engagement, e.engagement as expected_engagement,
    a.engagement_tier as engagement_tier, e.engagement_tier as expected_engagement_tier,
    a.total as total, e.total as expected_total, a.total_tier as total_tier, e.total_tier as expected_total_tier
from {{ ref('lead_scores') }} a
full outer join {{ ref('expected_scores') }} e on a.lead_id = e.lead_id
where a.lead_id is null
   or e.lead_id is null
   or not (abs(a.fit - e.fit) <= 1e-9)
   or not (abs(a.engagement - e.engagement) <= 1e-9)
   or not (abs(a.total - e.total) <= 1e-9)
   or coalesce(a.fit_tier, '') <> coalesce(e.fit_tier, '')
   or coalesce(a.engagement_tier, '') <> coalesce(e.engagement_tier, '')
   or coalesce(a.total_tier, '') <> coalesce(e.total_tier, '')
