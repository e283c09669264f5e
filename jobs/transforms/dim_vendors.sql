SELECT vendor_id, vendor_name, vendor_phone, vendor_email, _rescued_data
FROM src_vendor
