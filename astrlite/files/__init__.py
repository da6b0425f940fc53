"""Attachments: multipart uploads, ranges, safe file names, content sniffing, the store on disk."""
