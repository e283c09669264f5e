SELECT vendor_id, vendor_name, vendor_phone, vendor_email
FROM src_vendor
