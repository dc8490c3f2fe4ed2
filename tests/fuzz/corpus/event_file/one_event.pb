	³ºqâÄÚA*

train/epoch_lossmU4?