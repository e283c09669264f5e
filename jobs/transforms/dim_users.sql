-- Users with their card, masked at staging; the password column is never staged.
SELECT
    u.user_id,
    u.username,
    u.full_name,
    u.address,
    u.email,
    u.phone,
    uc.credit_card_number AS credit_card_masked,
    -- Values of undeclared columns (schema contract rescue), every source's merged (render.ts).
    {{ merge_rescued(u, uc) }} AS _rescued_data
FROM src_user AS u
LEFT JOIN src_user_has_creditcard AS uc ON uc.user_id = u.user_id
