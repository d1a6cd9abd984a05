"""Official social-media accounts: intake of posts and comments, moderation, commenters, reports (issue 8).

The engine decides (channel `social`); this package only turns its decisions into moderation: what to
remove, what to queue for a moderator, which commenter to warn or block, and what record to keep.
"""
