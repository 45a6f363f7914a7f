"""Class names and the confusable-class maps used by ``instance`` label noise.

A confusable map sends each class index to the classes its label may be flipped
to (never itself); :func:`lilaw_edu.noise.inject.inject_label_noise` draws the new
label uniformly from that list. Each dataset's map is part of its registry record
(:mod:`lilaw_edu.datasets.registry`); datasets without one get a feature-based map
at run time (:func:`lilaw_edu.noise.maps.confusable_map_from_features`).

* CIFAR-10: a hand-made map from the pairs that dominate typical CIFAR-10
  confusion matrices.
* CIFAR-100 (documented choice): the 20 superclasses of Krizhevsky (2009) have
  five classes each; every class is confusable with the four other members of its
  superclass (e.g. ``maple_tree`` -> oak, palm, pine, willow). This is the usual
  "coarse-label" notion of similar CIFAR-100 classes, needs no training data, and
  gives every class four targets.
"""
from __future__ import annotations

from types import MappingProxyType

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: Confusable CIFAR-10 classes: cat<->dog, automobile<->truck, deer<->horse,
#: airplane<->bird/ship. No class lists itself. (H-CAT's own map sends frog and
#: truck to themselves, so those labels never change, and its comments disagree
#: with its entries.)
CIFAR10_CONFUSABLE = MappingProxyType({
    0: (2, 8),  # airplane -> bird, ship
    1: (9,),  # automobile -> truck
    2: (0, 4, 6),  # bird -> airplane, deer, frog
    3: (5,),  # cat -> dog
    4: (7, 2),  # deer -> horse, bird
    5: (3,),  # dog -> cat
    6: (2, 3),  # frog -> bird, cat
    7: (4, 5),  # horse -> deer, dog
    8: (0, 1),  # ship -> airplane, automobile
    9: (1,),  # truck -> automobile
})

#: The 20 CIFAR-100 superclasses and their five fine classes (names as in the
#: dataset's ``meta`` file; fine label = position in the sorted list of all 100).
CIFAR100_SUPERCLASSES = MappingProxyType({
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
})
CIFAR100_CLASSES = tuple(sorted(name for members in CIFAR100_SUPERCLASSES.values() for name in members))


def superclass_confusable(superclasses, class_names) -> MappingProxyType:
    """Map each class to the other members of its superclass.

    Parameters
    ----------
    superclasses : mapping str -> sequence of str
        Superclass name -> names of its fine classes (each fine class in exactly one).
    class_names : sequence of str, length C
        Fine class names in label order.

    Returns
    -------
    MappingProxyType int -> tuple of int
        Class index -> indices of the other classes of its superclass, ascending.
    """
    index = {name: i for i, name in enumerate(class_names)}
    members = [sorted(index[n] for n in group) for group in superclasses.values()]
    table = {c: tuple(o for o in group if o != c) for group in members for c in group}
    if sorted(table) != list(range(len(class_names))):
        raise ValueError("superclasses must partition class_names, got classes in none or several superclasses")
    return MappingProxyType(dict(sorted(table.items())))


CIFAR100_CONFUSABLE = superclass_confusable(CIFAR100_SUPERCLASSES, CIFAR100_CLASSES)
