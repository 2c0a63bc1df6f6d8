"""Synthetic generators (Yang et al.): specs made into networks, the design spaces
(shallow autoencoders, :mod:`core.synthetic.space`; real-decoder-like models,
:mod:`core.synthetic.decoder`), and the bank of briefly fitted models that teaches the
fingerprint extractor."""

from core.synthetic.bank import (
    BankConfig,
    SyntheticBank,
    fit_one,
    fit_stacked,
    match_statistics,
)
from core.synthetic.decoder import (
    DECODER_SPACE,
    DecoderGenerator,
    DecoderSpec,
    decoder_architectures,
    sample_decoder,
)
from core.synthetic.model import (
    DownBlock,
    SyntheticGenerator,
    UpBlock,
    batch_statistics_only,
    build_generator,
    stack_states,
    unstack_state,
)
from core.synthetic.samples import HELDOUT, fit_bank, heldout_config, write_bank_samples
from core.synthetic.space import SYNTHETIC_SPACE, architectures, sample_spec

__all__ = [
    "BankConfig", "SyntheticBank", "fit_one", "fit_stacked", "match_statistics",
    "SYNTHETIC_SPACE", "DownBlock", "SyntheticGenerator", "UpBlock", "architectures",
    "batch_statistics_only", "build_generator", "sample_spec", "stack_states",
    "unstack_state", "DECODER_SPACE", "DecoderGenerator", "DecoderSpec",
    "decoder_architectures", "sample_decoder", "HELDOUT", "fit_bank", "heldout_config",
    "write_bank_samples",
]
