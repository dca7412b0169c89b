"""Pages to look at the data: self-contained HTML (Jinja2 templates, thumbnails as small JPEG files beside the
page, no server, no network) that open from disk in any browser.

- `write_pool_page`: a scored pool per task: histogram with the cut of each keep fraction, top and bottom rows,
  a slider that moves the cut, two scorers side by side, and on SynthRS the true quality and corruption operator
  of every row with the precision-vs-kept curve (`rs-reward browse`, written by `rs-reward filter`);
- `write_bon_page`: best-of-N candidates with each selector's pick and each candidate's scores (`rs-reward bon`);
- `write_grpo_page`: GRPO completions with their images and reward components, from TRL's completion logs
  (`rs-reward grpo` with `log_completions: true`).

Every view shows a deterministic sample of at most `max_rows` rows, so the page has the same size for a pool of a
thousand rows or of a million. Texts are escaped (Jinja2 autoescaping; data for the scripts through `tojson`).
"""

from .bon import write_bon_page
from .grpo import write_grpo_page
from .pool import write_pool_page


__all__ = ["write_bon_page", "write_grpo_page", "write_pool_page"]
