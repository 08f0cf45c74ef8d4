"""Who is asking: principals, device-flow login, token storage, bearer validation."""
