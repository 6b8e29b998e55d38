"""WeChat Pay (API v3): the adapter and, in simulator/, a local stand-in for WeChat Pay's servers."""
