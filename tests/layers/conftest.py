import pytest


@pytest.fixture
def small_blocks(monkeypatch):
    """Makes MultiHeadAttention's query-block path run on sequences of 7
    tokens (the length the attention tests use), causal or not."""
    import layers.multi_head_attention as mha_module

    monkeypatch.setattr(mha_module, "QUERY_BLOCK_MIN", 2)
    monkeypatch.setattr(mha_module, "QUERY_BLOCKS", 3)
    monkeypatch.setattr(mha_module, "BLOCKED_PAIRS", 7 * 7)
