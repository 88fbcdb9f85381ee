

def test_frozen_text_features_do_not_depend_on_their_batch(tiny_model):
    """In training (text_one_by_one), a string's cached features are the same whatever it was encoded with
    (resumed = uninterrupted), even where torch runs on two threads (they split a batch's rows by its size)."""
    import torch
    a = "Dilated LV with severely reduced EF. No LGE."
    b = "Asymmetric septal hypertrophy with patchy mid-wall enhancement in the hypertrophied segments, SAM present."
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    tiny_model.text_one_by_one = True
    try:
        tiny_model._text_cache.clear()
        alone = tiny_model._pooled_cached([a])[0].clone()
        tiny_model._text_cache.clear()
        together = tiny_model._pooled_cached([b, a, a + " x"])[1]
        assert torch.equal(alone, together)
    finally:
        tiny_model.text_one_by_one = False
        torch.set_num_threads(before)
        tiny_model._text_cache.clear()
