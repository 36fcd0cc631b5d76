// SPDX-License-Identifier: MIT
// The ERC-20 the EVM connector's tests deploy on anvil: OpenZeppelin's ERC20 as it
// is, with 6 decimals like USDT, the whole supply minted to the deployer.
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract TestToken is ERC20 {
    constructor(string memory name_, string memory symbol_, uint256 supply)
        ERC20(name_, symbol_)
    {
        _mint(msg.sender, supply);
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
