"""Sources -> Documents: the arXiv client and the news spiders."""
