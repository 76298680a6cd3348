"""``gateway upload``: a resumable bulk uploader speaking the Media API v2 chunk protocol."""
