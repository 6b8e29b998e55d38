"""The on-screen keyboards: which keys, in which order."""

# The 31 provincial-level abbreviations, in the order of the common plate keyboards.
PROVINCES = list("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")
DIGITS = list("1234567890")
# Plates never use I or O; VIN codes never use I, O or Q (ISO 3779).
PLATE_LETTERS = [list("QWERTYUP"), list("ASDFGHJKL"), list("ZXCVBNM")]
VIN_LETTERS = [list("WERTYUP"), list("ASDFGHJKL"), list("ZXCVBNM")]
# Characters at the end (or, for embassies, the start) of special plates.
PLATE_SPECIALS = list("学警挂港澳领使")
