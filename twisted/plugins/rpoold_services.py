# twistd dropins of the project.  Kept tiny: each names its tap module by
# string, so scanning for plugins imports none of the application.
from twisted.application.service import ServiceMaker

rpoold = ServiceMaker(
    "rpoold", "rpoold.tap", "G8OS Resource Pool API daemon.", "rpoold"
)

core0sim = ServiceMaker(
    "core0sim", "plugins.core0sim.tap", "Simulated core0 nodes on real redis-server children.", "core0sim"
)

ayssim = ServiceMaker(
    "ayssim", "plugins.ayssim.tap", "AYS 8.2 simulator acting on core0 nodes.", "ayssim"
)
