"""One ``pn.viewable.Viewer`` per dashboard tab; views render state and hold no maths."""
