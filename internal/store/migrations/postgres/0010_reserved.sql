-- Reserved for issue 14's migration (the store refuses gaps). At the merge
-- this file gives way to issue 14's 0010, or 0011 is renumbered 0010.

SELECT 1;
