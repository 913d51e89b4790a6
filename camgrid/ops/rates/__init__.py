"""Online, intactness and HD rates: time-weighted per channel and local day, summed per point
class, organisation, vendor and device type (docs/rates.md)."""
