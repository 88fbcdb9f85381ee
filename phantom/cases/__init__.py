"""phantom.cases: what one synthetic study is before anything is drawn or written. `latent` holds the
records (a class-bearing `Latent` of physiology and a class-free `Acquisition` of nuisance factors), the
contract between the phantom's parts; `params` samples a `Latent` per study from a shared healthy
baseline overridden by the per-class samplers of `classes`, keeping it consistent with the ACDC-style
class rules of `rules`; `acquisition` samples the scanner, vendor, geometry and sequence settings.
"""
