# hobguard: started by MicroPython at boot. Everything is in hobguard_fw;
# an unhandled error there cuts every burner and resets the board.
from hobguard_fw import app

app.main()
